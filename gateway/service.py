"""The gateway service: every HTTP route, mixed in from ``gateway/routes``.

Each routes module holds one bounded context's endpoints; this class only
brings them together with the RPC clients they use. The web app's catch-all
routes come last so every API route wins over them.
"""
from gateway.http import Authenticated
from gateway.routes.access import AccessRoutes
from gateway.routes.analytics import AnalyticsRoutes
from gateway.routes.break_glass import BreakGlassRoutes
from gateway.routes.dev import DevRoutes
from gateway.routes.directory import DirectoryRoutes
from gateway.routes.hsds import HsdsRoutes
from gateway.routes.identity import IdentityRoutes
from gateway.routes.notices import NoticeRoutes
from gateway.routes.referrals import ReferralRoutes
from gateway.routes.retention import RetentionRoutes
from gateway.routes.single_sign_on import SingleSignOnRoutes
from gateway.routes.system import SystemRoutes
from gateway.routes.webapp import WebAppRoutes
from weintervene.rpc import ClusterRpc, ServiceRpc


class GatewayService(
    Authenticated,
    SystemRoutes,
    IdentityRoutes,
    SingleSignOnRoutes,
    BreakGlassRoutes,
    AccessRoutes,
    NoticeRoutes,
    DirectoryRoutes,
    HsdsRoutes,
    ReferralRoutes,
    RetentionRoutes,
    AnalyticsRoutes,
    DevRoutes,
    WebAppRoutes,
):
    name = "gateway"

    cluster_rpc = ClusterRpc()
    identity_rpc = ServiceRpc("identity")
    directory_rpc = ServiceRpc("directory")
    referrals_rpc = ServiceRpc("referrals")
    analytics_rpc = ServiceRpc("analytics")
    retention_rpc = ServiceRpc("retention")
