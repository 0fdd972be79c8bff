"""Exception classes of the pipeline.

Their class names are the contract with the state machine: a Lambda that raises one reports
`errorType` = the class name, and the ASL's Retry/Catch match on it. Renaming a class is a
breaking change to statemachine/export.asl.json.
"""


class ExportError(Exception):
    """Base class of every error the pipeline raises on purpose."""


class TransientServiceError(ExportError):
    """Throttling or an internal error of a service: the state machine retries with backoff."""


class ExportQuotaExceeded(ExportError):
    """The account already runs its 20 concurrent bulk-export jobs: retried with a long backoff."""


class ExportBusy(ExportError):
    """Another export job of this object type is still running (jobs cannot be cancelled): retried later."""


class InvalidExportRequest(ExportError):
    """The execution's input is malformed or asks for something not allowed: never retried, nothing changes."""


class ExportRejected(ExportError):
    """The service refused to start the export for a reason that a retry will not fix."""


class WatermarkConflict(ExportError):
    """The watermark moved under us: someone else advanced it. Nothing is lost; on-call should look."""


class ConfigurationError(ExportError):
    """The function's environment is missing or malformed (a deployment problem)."""


class DataIntegrationConflict(ExportError):
    """A data integration or association of the expected name exports something else: never reused, never retried."""


class DataIntegrationQuotaExceeded(ExportError):
    """The Region's data-integration quota is used up: waiting cannot fix it, so it fails at once."""


class ExportFilesUnsettled(ExportError):
    """The job's files kept changing after it COMPLETED: the window is not indexed, the watermark stays."""


class CatalogConflict(ExportError):
    """The export catalog holds a partition or table that differs from this export's: never overwritten or retried."""
