"""analytics's entrypoints."""
from services.analytics.dependencies import analytics_database
from weintervene.observability import EntrypointMetrics, HealthCheck


class AnalyticsService(HealthCheck):
    name = "analytics"

    db = analytics_database()
    metrics = EntrypointMetrics()
