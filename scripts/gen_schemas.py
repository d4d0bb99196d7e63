"""Generate the versioned JSON Schemas in contract/schemas/ (run once per contract change).

The generated files are the contract and are committed; this script only keeps them consistent.
Usage: python scripts/gen_schemas.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "contract" / "schemas"
VERSION = "001"

# Dates and times must be real (RFC 3339 "format", checked by the validator), not just well shaped.
DATE = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
DATETIME = {
    "type": "string",
    "format": "date-time",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$",
}
DIP_ID = {"type": "string", "pattern": r"^\d{10}$"}
MPID = {"type": "string", "pattern": r"^[A-Z0-9]{4}$"}
ROLE = {
    "type": "string",
    "enum": ["SUP", "REGS", "SDS", "ADS", "UMSDS", "MSS", "MSA", "UMSO", "LDSO", "MDS", "LSS", "ISD"],
}
SERVICE_ROLE = {"type": "string", "enum": ["SDS", "ADS", "UMSDS", "MSS", "MSA", "UMSO"]}
GSP = {"type": "string", "pattern": "^_[A-HJ-NP]$"}
KWH = {"type": "number"}  # 9.3 precision and sign are business rules (quality rule 8)


def obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
        "additionalProperties": False,
    }


def common_block(interface: str, event_codes: list[str], mpan_level: bool) -> dict[str, Any]:
    blocks: dict[str, Any] = {
        "S0": obj(
            {
                "interfaceID": {"const": interface},
                "schemaVersion": {"const": VERSION},
                "eventCode": {"type": "string", "enum": event_codes},
            }
        ),
        "S1": obj(
            {
                "environmentTag": {"type": "string", "enum": ["PROD", "PRE", "TEST", "SIM"]},
                "senderUniqueReference": {"type": "string", "minLength": 1, "maxLength": 64},
                "senderTimestamp": DATETIME,
                "senderDIPID": DIP_ID,
                "senderRoleID": ROLE,
                "senderCorrelationID": {"type": "string", "maxLength": 64},
            },
            required=[
                "environmentTag",
                "senderUniqueReference",
                "senderTimestamp",
                "senderDIPID",
                "senderRoleID",
            ],
        ),
        "A0": obj(
            {
                "primaryRecipients": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "secondaryRecipients": {"type": "array", "items": {"type": "string"}},
            },
            required=["primaryRecipients"],
        ),
        "D0": obj(
            {
                "transactionID": {"type": "string", "pattern": r"^T-[A-Za-z0-9-]{1,60}$"},
                "transactionTimestamp": DATETIME,
                "publicationID": {"type": "string", "pattern": r"^PUB-\d{3}$"},
                "replayIndicator": {"type": "boolean"},
            }
        ),
    }
    if mpan_level:
        blocks["M0"] = obj(
            {
                "MPANCore": {"type": "string", "pattern": r"^\d{13}$"},
                "distributorDIPID": DIP_ID,
                "GSPGroupID": GSP,
            }
        )
    return obj(blocks)


PERIOD = obj(
    {
        "settlementPeriodEffectiveToDateTime": DATETIME,
        "consumption": KWH,
        "settlementPeriodQualityIndicator": {
            "type": "string",
            "pattern": "^(A|E[0-9]|EA[0-9]{1,2}|ZE|[A-Z0-9]{1,4})$",
        },
        "estimationReasonCode": {"type": "integer", "minimum": 1, "maximum": 99},
    },
    required=[
        "settlementPeriodEffectiveToDateTime",
        "consumption",
        "settlementPeriodQualityIndicator",
    ],
)
PERIODS = {"type": "array", "items": PERIOD, "minItems": 1, "maxItems": 50}

APPOINTMENT = obj({"serviceRole": SERVICE_ROLE, "serviceMPID": MPID, "serviceDIPID": DIP_ID})
ADDRESS = obj(
    {
        "addressLines": {"type": "array", "items": {"type": "string"}, "maxItems": 9},
        "postcode": {"type": "string", "maxLength": 10},
    }
)

CUSTOM: dict[str, tuple[list[str], bool, dict[str, Any]]] = {
    "IF-001": (
        ["[ChangeOfSupplier]"],
        True,
        obj(
            {
                "registrationID": {"type": "string"},
                "effectiveFromDate": DATE,
                "newSupplierMPID": MPID,
                "newSupplierDIPID": DIP_ID,
                "oldSupplierMPID": MPID,
                "oldSupplierDIPID": DIP_ID,
                "segment": {"enum": ["S", "A", "U"]},
            }
        ),
    ),
    "IF-031": (
        ["[AppointmentRequest]"],
        True,
        obj(
            {
                "requestID": {"type": "string"},
                "effectiveFromDate": DATE,
                "supplierMPID": MPID,
                "appointment": APPOINTMENT,
            }
        ),
    ),
    "IF-032": (
        ["[AppointmentResponse]"],
        True,
        obj(
            {
                "requestID": {"type": "string"},
                "effectiveFromDate": DATE,
                "responseCode": {"enum": ["A", "R", "L", "W"]},
                "rejectionReason": {"type": "string"},
            },
            required=["requestID", "effectiveFromDate", "responseCode"],
        ),
    ),
    "IF-033": (
        ["[RequestToConsiderAppointment]"],
        True,
        obj(
            {
                "requestID": {"type": "string"},
                "effectiveFromDate": DATE,
                "supplierMPID": MPID,
                "supplierDIPID": DIP_ID,
                "appointment": APPOINTMENT,
                "connectionType": {"enum": ["W", "L", "H", "E", "U"]},
            }
        ),
    ),
    "IF-034": (
        ["[ConsiderAppointmentResponse]"],
        True,
        obj(
            {
                "requestID": {"type": "string"},
                "effectiveFromDate": DATE,
                "responseCode": {"enum": ["A", "R", "L", "W"]},
                "appointment": APPOINTMENT,
            }
        ),
    ),
    "IF-035": (
        ["[AppointmentAccepted]", "[AppointmentRejected]", "[AppointmentLapsed]"],
        True,
        obj(
            {
                "requestID": {"type": "string"},
                "effectiveFromDate": DATE,
                "appointmentStatus": {"enum": ["accepted", "rejected", "lapsed"]},
                "appointment": APPOINTMENT,
            }
        ),
    ),
    "IF-036": (
        ["[AppointmentConfirmed]"],
        True,
        obj(
            {
                "registrationID": {"type": "string"},
                "effectiveFromDate": DATE,
                "supplierMPID": MPID,
                "supplierDIPID": DIP_ID,
                "segment": {"enum": ["S", "A", "U"]},
                "connectionType": {"enum": ["W", "L", "H", "E", "U"]},
                "energisationStatus": {"enum": ["E", "D"]},
                "domesticPremisesIndicator": {"type": "boolean"},
                "consentGranularity": {"enum": ["H", "D", "M", "N"]},
                "meterIDs": {"type": "array", "items": {"type": "string"}},
                "meteringPointAddress": ADDRESS,
                "appointments": {"type": "array", "items": APPOINTMENT, "minItems": 1},
            }
        ),
    ),
    "IF-037": (
        ["[DeAppointment]"],
        True,
        obj(
            {
                "effectiveToDate": DATE,
                "deAppointmentReason": {"enum": ["CSUPP", "CSERV", "DEREG", "CSEGM", "CCONN", "IMPEXP", "RELATED"]},
                "appointment": APPOINTMENT,
            }
        ),
    ),
    "IF-018": (
        ["[EnergisationStatusChange]", "[MeteringPointUpdate]"],
        True,
        obj(
            {
                "effectiveFromDate": DATE,
                "energisationStatus": {"enum": ["E", "D"]},
                "meterIDs": {"type": "array", "items": {"type": "string"}},
                "meteringPointAddress": ADDRESS,
            },
            required=["effectiveFromDate"],
        ),
    ),
    "IF-026": (
        ["[DomesticIndicatorChange]", "[ConsentChange]"],
        True,
        obj(
            {
                "effectiveFromDate": DATE,
                "domesticPremisesIndicator": {"type": "boolean"},
                "consentGranularity": {"enum": ["H", "D", "M", "N"]},
            },
            required=["effectiveFromDate"],
        ),
    ),
    "IF-021": (
        ["[ActivePower]", "[ReactivePower]"],
        True,
        obj(
            {
                "dataServiceDIPID": DIP_ID,
                "connectionType": {"enum": ["W", "L", "H", "E", "U"]},
                "measurementQuantityID": {"enum": ["AI", "AE", "RI", "RE"]},
                "utcSettlementDate": DATE,
                "settlementPeriodDuration": {"const": 30},
                "periods": PERIODS,
            }
        ),
    ),
    "IF-013": (
        ["[DefaultedConsumption]"],
        True,
        obj(
            {
                "measurementQuantityID": {"enum": ["AI", "AE", "RI", "RE"]},
                "utcSettlementDate": DATE,
                "defaultReason": {"type": "string"},
                "periods": PERIODS,
            }
        ),
    ),
    "IF-014": (
        ["[ConsumptionRejected]", "[ConsumptionWarning]"],
        True,
        obj(
            {
                "utcSettlementDate": DATE,
                "originalTransactionID": {"type": "string"},
                "warningCode": {"type": "string", "pattern": r"^[WR]\d{3}$"},
                "description": {"type": "string", "maxLength": 500},
            }
        ),
    ),
    "IF-022": (
        ["[LoadShapePeriods]"],
        False,
        obj(
            {
                "gspGroupID": GSP,
                "utcSettlementDate": DATE,
                "loadShapeCategory": {"type": "string"},
                "periods": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 50,
                    "items": obj(
                        {
                            "settlementPeriodEffectiveToDateTime": DATETIME,
                            "loadShapeValue": {"type": "number"},
                        }
                    ),
                },
            }
        ),
    ),
    "IF-023": (
        ["[LoadShapeTotals]"],
        False,
        obj(
            {
                "gspGroupID": GSP,
                "utcSettlementDate": DATE,
                "totals": {
                    "type": "array",
                    "items": obj(
                        {
                            "loadShapeCategory": {"type": "string"},
                            "meteringPointCount": {"type": "integer", "minimum": 0},
                            "totalConsumption": KWH,
                        }
                    ),
                },
            }
        ),
    ),
    "IF-047": (
        ["[ISDPublication]"],
        False,
        obj(
            {
                "dataset": {"enum": ["market_participants", "gsp_groups", "distributors"]},
                "effectiveFromDate": DATE,
                "records": {"type": "array", "items": {"type": "object"}},
            }
        ),
    ),
}


def build(interface: str) -> dict[str, Any]:
    codes, mpan_level, custom = CUSTOM[interface]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:mhhs:schema:{interface}:{VERSION}",
        "title": f"{interface} schema version {VERSION}",
        "type": "object",
        "properties": {
            "CommonBlock": common_block(interface, codes, mpan_level),
            "CustomBlock": custom,
        },
        "required": ["CommonBlock", "CustomBlock"],
        "additionalProperties": False,
    }


def main() -> None:
    for interface in CUSTOM:
        path = OUT / interface / f"{VERSION}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(build(interface), indent=2) + "\n", encoding="utf-8")
        print(path.relative_to(OUT.parent.parent.parent))


if __name__ == "__main__":
    main()
