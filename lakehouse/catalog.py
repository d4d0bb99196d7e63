"""Opening the Iceberg catalog from settings: embedded SQLite by default, REST + S3 by config."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError

from lakehouse.errors import CatalogUnavailableError
from lakehouse.retry import backoff_seconds
from lakehouse.settings import LakehouseSettings


def _is_remote(warehouse: str) -> bool:
    return "://" in warehouse and not warehouse.startswith("file://")


def catalog_properties(settings: LakehouseSettings) -> dict[str, Any]:
    """The pyiceberg catalog properties the settings describe."""
    props: dict[str, Any] = {"type": settings.catalog_type}
    if _is_remote(settings.warehouse):
        warehouse = settings.warehouse
    else:
        local = Path(settings.warehouse.removeprefix("file://")).resolve()
        local.mkdir(parents=True, exist_ok=True)
        warehouse = local.as_uri()
    props["warehouse"] = warehouse
    if settings.catalog_type == "sql":
        if settings.catalog_uri:
            props["uri"] = settings.catalog_uri
        elif _is_remote(settings.warehouse):
            raise CatalogUnavailableError("a remote warehouse needs MHHS_CATALOG_URI for the SQL catalog")
        else:
            props["uri"] = f"sqlite:///{Path(warehouse.removeprefix('file://')) / 'catalog.db'}"
        props["init_catalog_tables"] = "true"
    else:
        if not settings.catalog_uri:
            raise CatalogUnavailableError("the REST catalog needs MHHS_CATALOG_URI")
        props["uri"] = settings.catalog_uri
        if settings.catalog_credential:
            props["credential"] = settings.catalog_credential.get_secret_value()
        if settings.catalog_token:
            props["token"] = settings.catalog_token.get_secret_value()
    if settings.s3_endpoint:
        props["s3.endpoint"] = settings.s3_endpoint
        props["s3.path-style-access"] = "true"
    if settings.s3_access_key_id:
        props["s3.access-key-id"] = settings.s3_access_key_id
    if settings.s3_secret_access_key:
        props["s3.secret-access-key"] = settings.s3_secret_access_key.get_secret_value()
    if _is_remote(settings.warehouse):
        props["s3.region"] = settings.s3_region
    return props


_OPEN_ATTEMPTS = 5


def _ensure_namespace(catalog: Catalog, namespace: str) -> None:
    """Create the namespace unless it exists; workers starting together race here, and that is fine."""
    if catalog.namespace_exists(namespace):
        return
    try:
        catalog.create_namespace(namespace)
    except NamespaceAlreadyExistsError:
        pass
    except Exception:  # the SQL catalog reports a lost race as an IntegrityError
        if not catalog.namespace_exists(namespace):
            raise


def open_catalog(settings: LakehouseSettings) -> Catalog:
    """Open the configured catalog and make sure the product's namespace exists.

    Raises:
        CatalogUnavailableError: if the catalog cannot be reached or configured.
    """
    props = catalog_properties(settings)
    last: Exception | None = None
    for attempt in range(_OPEN_ATTEMPTS):
        try:
            catalog = load_catalog(settings.catalog_name, **props)
            _ensure_namespace(catalog, settings.namespace)
            return catalog
        except Exception as exc:  # pyiceberg raises many kinds; translate them at the boundary
            # workers starting together on a fresh SQL catalog race to create its tables: try again
            last = exc
            time.sleep(backoff_seconds(attempt + 1))
    raise CatalogUnavailableError(f"cannot open the {settings.catalog_type} catalog: {last}") from last
