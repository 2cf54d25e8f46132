"""The gateway service: every HTTP route, mixed in from ``gateway/routes``.

Each routes module holds one bounded context's endpoints; this class only
brings them together with the RPC clients they use.
"""
from nameko.rpc import ClusterRpc, ServiceRpc

from gateway.http import Authenticated
from gateway.routes.analytics import AnalyticsRoutes
from gateway.routes.identity import IdentityRoutes
from gateway.routes.system import SystemRoutes


class GatewayService(Authenticated, SystemRoutes, IdentityRoutes, AnalyticsRoutes):
    name = "gateway"

    cluster_rpc = ClusterRpc()
    identity_rpc = ServiceRpc("identity")
    directory_rpc = ServiceRpc("directory")
    referrals_rpc = ServiceRpc("referrals")
    analytics_rpc = ServiceRpc("analytics")
    retention_rpc = ServiceRpc("retention")
