"""The API's services: plain classes over the lakehouse and the access policy, no HTTP.

``Services`` is built once per process and handed to the routes; a scheduled job or a notebook
can build and use the same classes.
"""

from __future__ import annotations

from dataclasses import dataclass

from access.guard import AccessGuard
from access.policy import load_policy
from api.services.aggregates import AggregateService
from api.services.audit import AuditLog
from api.services.cursor import CursorSigner
from api.services.deliveries import DeliveryService
from api.services.discovery import DiscoveryService
from api.services.extracts import ExtractService
from api.services.quality import QualityService
from api.services.replay import ReplayService
from api.settings import ApiSettings
from lakehouse.settings import LakehouseSettings
from lakehouse.store import Store
from lakehouse.tables import ACCESS_LOG, CONSUMPTION, EVENTS, REGISTRATION


@dataclass(frozen=True)
class Services:
    """Everything the routes need."""

    api: ApiSettings
    store: Store
    guard: AccessGuard
    discovery: DiscoveryService
    replay: ReplayService
    extracts: ExtractService
    aggregates: AggregateService
    quality: QualityService
    deliveries: DeliveryService
    audit: AuditLog

    def warm_up(self) -> None:
        """Load the tables and the current appointment intervals, so the first request is fast."""
        for name in (EVENTS, CONSUMPTION, REGISTRATION, ACCESS_LOG):
            self.store.table(name)
        self.guard.warm_up()


def build_services(api: ApiSettings, lake: LakehouseSettings) -> Services:
    """Open the catalog once and build every service over it.

    Raises:
        CatalogUnavailableError: if the catalog cannot be opened.
        PolicyError: if the policy file is not valid.
    """
    store = Store(lake)
    guard = AccessGuard(store, load_policy(api.policy_file), api.mask_secret.get_secret_value().encode())
    cursors = CursorSigner(api.cursor_secret.get_secret_value().encode())
    return Services(
        api=api,
        store=store,
        guard=guard,
        discovery=DiscoveryService(store),
        replay=ReplayService(store, guard, cursors),
        extracts=ExtractService(store, guard, api.batch_rows),
        aggregates=AggregateService(store, guard, api.batch_rows, api.aggregate_min_mpans),
        quality=QualityService(store, guard, api.batch_rows, api.quality_docs_dir),
        deliveries=DeliveryService(store, api.deliveries_jwks_file),
        audit=AuditLog(store, api.audit_journal_dir),
    )
