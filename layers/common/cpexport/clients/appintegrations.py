"""AppIntegrations: the data integration and association of each exported object type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from cpexport.clients import client
from cpexport.clients.translate import error_code, translated
from cpexport.models import ExportWindow, from_epoch_ms

SOURCE_URI = "AmazonConnect://AppIntegrations"


@dataclass(frozen=True)
class DataIntegration:
    """A data integration as the service describes it (the export's source and key)."""

    name: str
    id: str
    arn: str
    kms_key: str | None = None
    source_uri: str | None = None
    domain_names: tuple[str, ...] = ()
    object_types: tuple[str, ...] = ()


def _described(response: dict[str, Any]) -> DataIntegration:
    profiles = (response.get("ObjectConfiguration") or {}).get("CustomerProfiles") or {}
    return DataIntegration(
        name=response["Name"],
        id=response["Id"],
        arn=response["Arn"],
        kms_key=response.get("KmsKey"),
        source_uri=response.get("SourceURI"),
        domain_names=tuple(profiles.get("domainName") or ()),
        object_types=tuple(profiles.get("objectType") or ()),
    )


@dataclass(frozen=True)
class Association:
    """What ListDataIntegrationAssociations tells about the one association: only the last job."""

    association_id: str
    arn: str
    destination_uri: str | None
    window: ExportWindow | None
    status: str | None
    status_message: str | None


def _window_of(summary: dict[str, Any]) -> ExportWindow | None:
    on_demand = (summary.get("ExecutionConfiguration") or {}).get("OnDemandConfiguration") or {}
    if not on_demand.get("StartTime") or not on_demand.get("EndTime"):
        return None
    try:
        return ExportWindow(start=from_epoch_ms(on_demand["StartTime"]), end=from_epoch_ms(on_demand["EndTime"]))
    except ValueError:
        return None


def _execution_configuration(window: ExportWindow) -> dict[str, Any]:
    start, end = window.to_epoch_ms()
    return {"ExecutionMode": "ON_DEMAND", "OnDemandConfiguration": {"StartTime": start, "EndTime": end}}


class AppIntegrations:
    """The AppIntegrations calls the export needs, with errors the state machine understands."""

    def __init__(self, api: Any | None = None, starter: Any | None = None) -> None:
        self._api = api if api is not None else client("appintegrations")
        # Create/Update start a job: no automatic retry, an error is reported as possibly taken effect.
        self._starter = starter if starter is not None else (api if api is not None else client("appintegrations", 1))

    def get_data_integration(self, name: str) -> DataIntegration | None:
        """The data integration of that name, or None."""
        try:
            response = self._api.get_data_integration(Identifier=name)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            with translated("GetDataIntegration"):
                raise
        return _described(response)

    def ensure_data_integration(
        self, name: str, kms_key_arn: str, domain_name: str, object_type: str, description: str
    ) -> DataIntegration:
        """Get the data integration, creating it the first time (once per object type, forever).

        The caller checks that an existing one is the one it needs (see `exports`).
        """
        existing = self.get_data_integration(name)
        if existing is not None:
            return existing
        try:
            response = self._api.create_data_integration(
                Name=name,
                KmsKey=kms_key_arn,
                SourceURI=SOURCE_URI,
                Description=description[:1000],
                ObjectConfiguration={"CustomerProfiles": {"domainName": [domain_name], "objectType": [object_type]}},
            )
        except ClientError as exc:
            # Another execution created it between our Get and Create.
            if error_code(exc) == "DuplicateResourceException":
                found = self.get_data_integration(name)
                if found is not None:
                    return found
            with translated("CreateDataIntegration"):
                raise
        return _described(response)

    def find_association(self, data_integration: DataIntegration) -> Association | None:
        """The association of the data integration (there is at most one), or None."""
        with translated("ListDataIntegrationAssociations"):
            pages = self._api.get_paginator("list_data_integration_associations").paginate(
                DataIntegrationIdentifier=data_integration.arn
            )
            for page in pages:
                for summary in page.get("DataIntegrationAssociations", []):
                    arn = summary["DataIntegrationAssociationArn"]
                    last = summary.get("LastExecutionStatus") or {}
                    return Association(
                        association_id=arn.rsplit("/", 1)[-1],
                        arn=arn,
                        destination_uri=summary.get("DestinationURI"),
                        window=_window_of(summary),
                        status=last.get("ExecutionStatus"),
                        status_message=last.get("StatusMessage"),
                    )
        return None

    def create_association(self, data_integration: DataIntegration, destination_uri: str, window: ExportWindow) -> str:
        """Create the association: this starts its first export job. Returns the association id."""
        with translated("CreateDataIntegrationAssociation"):
            response = self._starter.create_data_integration_association(
                DataIntegrationIdentifier=data_integration.arn,
                DestinationURI=destination_uri,
                ExecutionConfiguration=_execution_configuration(window),
            )
        return str(response["DataIntegrationAssociationId"])

    def update_association(self, data_integration: DataIntegration, association_id: str, window: ExportWindow) -> None:
        """Give the association a new window: this starts the next export job."""
        with translated("UpdateDataIntegrationAssociation"):
            self._starter.update_data_integration_association(
                DataIntegrationIdentifier=data_integration.arn,
                DataIntegrationAssociationIdentifier=association_id,
                ExecutionConfiguration=_execution_configuration(window),
            )

    def list_data_integrations(self) -> list[DataIntegration]:
        """Every data integration of the account and Region (summaries: name, ARN, source; the id from the ARN)."""
        found: list[DataIntegration] = []
        with translated("ListDataIntegrations"):
            for page in self._api.get_paginator("list_data_integrations").paginate():
                for summary in page.get("DataIntegrations", []):
                    arn = summary["Arn"]
                    found.append(
                        DataIntegration(
                            name=summary["Name"],
                            id=arn.rsplit("/", 1)[-1],
                            arn=arn,
                            source_uri=summary.get("SourceURI"),
                        )
                    )
        return found
