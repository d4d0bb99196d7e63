"""The event contract: identifiers, topic catalogue and schemas agree with DOMAIN.md."""

from __future__ import annotations

import jsonschema_rs
import pytest

from contract import (
    GSP_GROUPS,
    is_valid_mpan,
    list_schemas,
    load_schema,
    load_topic_catalogue,
    mpan_check_digit,
)

REQUIRED_INTERFACES = {
    "IF-001",
    "IF-031",
    "IF-032",
    "IF-033",
    "IF-034",
    "IF-035",
    "IF-036",
    "IF-037",
    "IF-018",
    "IF-026",
    "IF-021",
    "IF-013",
    "IF-014",
    "IF-022",
    "IF-023",
    "IF-047",
}


@pytest.mark.parametrize("mpan", ["2499999999991", "1312345678907", "1800021679848"])
def test_known_valid_mpans_pass_the_check_digit(mpan: str) -> None:
    assert mpan_check_digit(mpan[:12]) == int(mpan[12])
    assert is_valid_mpan(mpan)


@pytest.mark.parametrize("mpan", ["2499999999990", "0999999999991", "249999999999", "24999999999x1"])
def test_invalid_mpans_fail(mpan: str) -> None:
    assert not is_valid_mpan(mpan)


def test_check_digit_rejects_wrong_length() -> None:
    with pytest.raises(ValueError):
        mpan_check_digit("123")


def test_gsp_groups_are_fourteen_without_i_and_o() -> None:
    assert len(GSP_GROUPS) == 14
    assert "_I" not in GSP_GROUPS and "_O" not in GSP_GROUPS


def test_every_required_interface_has_a_topic_and_a_schema() -> None:
    catalogue = load_topic_catalogue()
    assert {t.interface for t in catalogue.topics} >= REQUIRED_INTERFACES
    with_schema = {k.interface for k in list_schemas()}
    assert with_schema >= REQUIRED_INTERFACES
    for spec in catalogue.topics:
        assert spec.name == f"mhhs.{spec.domain}.{spec.interface.lower()}"
        assert spec.partitions >= 1


@pytest.mark.parametrize("key", list_schemas(), ids=str)
def test_schema_compiles_and_requires_its_settlement_date(key: object) -> None:
    interface, version = key.interface, key.version  # type: ignore[attr-defined]
    schema = load_schema(interface, version)
    jsonschema_rs.validator_for(schema)  # raises when the schema is not valid JSON Schema
    spec = load_topic_catalogue().by_interface(interface)
    assert spec is not None
    custom = schema["properties"]["CustomBlock"]
    assert spec.settlement_date in custom["required"]
    assert schema["properties"]["CommonBlock"]["properties"]["S0"]["properties"]["interfaceID"] == {"const": interface}


def test_unknown_schema_raises_key_error() -> None:
    with pytest.raises(KeyError):
        load_schema("IF-999", "001")


def test_workers_opening_a_fresh_catalog_together_all_succeed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import threading

    from lakehouse.catalog import open_catalog
    from lakehouse.settings import LakehouseSettings

    settings = LakehouseSettings(warehouse=str(tmp_path / "warehouse"))
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def open_one() -> None:
        start.wait()
        try:
            open_catalog(settings)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert open_catalog(settings).namespace_exists(settings.namespace)
