"""referrals's entrypoints."""
from services.referrals.dependencies import referrals_database
from weintervene.observability import EntrypointMetrics, HealthCheck


class ReferralsService(HealthCheck):
    name = "referrals"

    db = referrals_database()
    metrics = EntrypointMetrics()
