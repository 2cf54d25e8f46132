"""referrals's entrypoints."""
from services.referrals.dependencies import referrals_database
from weintervene.export import DataExporter
from weintervene.observability import EntrypointMetrics, HealthCheck


class ReferralsService(DataExporter, HealthCheck):
    name = "referrals"

    db = referrals_database()
    metrics = EntrypointMetrics()
