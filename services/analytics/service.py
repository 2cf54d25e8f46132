"""analytics's entrypoints."""
from services.analytics.dependencies import analytics_database
from weintervene.export import DataExporter
from weintervene.observability import EntrypointMetrics, HealthCheck


class AnalyticsService(DataExporter, HealthCheck):
    name = "analytics"

    db = analytics_database()
    metrics = EntrypointMetrics()
