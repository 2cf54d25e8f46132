"""retention's errors (registered remote errors; see weintervene.errors)."""
from weintervene.errors import Conflict, NotFound, remote


@remote
class RequestNotFound(NotFound):
    code = "deletion_request_not_found"


@remote
class ExportNotFound(NotFound):
    code = "export_not_found"


@remote
class InspectionNotFound(NotFound):
    code = "inspection_not_found"


@remote
class InspectionClosed(Conflict):
    code = "inspection_closed"
