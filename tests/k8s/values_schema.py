"""HelmChart values validated against the chart's own values schema, as Helm does before
rendering: Helm v3 pkg/chartutil/jsonschema.go ValidateAgainstSchema validates the
coalesced values against the chart's schema, then each subchart's section against the
subchart's schema (santhosh-tekuri/jsonschema in current Helm v3; jsonschema here, each
schema in the draft its `$schema` names)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
from hydradeploy.manifests.chart_defaults import ChartDefaults
from hydradeploy.manifests.helm_values import chart_values

_VALIDATORS: dict[tuple[str, str], jsonschema.protocols.Validator] = {}


def values_errors(
    user: Mapping[str, Any],
    chart: ChartDefaults,
    schemas: Mapping[tuple[str, str], Mapping[str, Any]],
) -> list[str]:
    """Why Helm would refuse our values for `chart` (its schema, then its subcharts')."""
    merged = chart_values(user, chart)
    return list(dict.fromkeys(_errors(merged, chart, schemas, "")))


def _errors(
    values: Mapping[str, Any],
    chart: ChartDefaults,
    schemas: Mapping[tuple[str, str], Mapping[str, Any]],
    prefix: str,
) -> list[str]:
    out = []
    schema = schemas.get((chart.chart, chart.version))
    if schema is not None:
        key = (chart.chart, chart.version)
        if key not in _VALIDATORS:
            cls = jsonschema.validators.validator_for(
                schema, default=jsonschema.Draft7Validator
            )
            _VALIDATORS[key] = cls(schema)
        for err in sorted(
            _VALIDATORS[key].iter_errors(dict(values)),
            key=lambda e: [str(p) for p in e.absolute_path],
        ):
            path = ".".join(str(p) for p in err.absolute_path)
            where = prefix + path if path else (prefix.rstrip(".") or "(values)")
            message = (
                err.message if len(err.message) <= 240 else err.message[:239] + "…"
            )
            out.append(
                f"values {where}: {message} ({chart.chart} {chart.version} values schema)"
            )
    for alias, (sub, _) in chart.subcharts.items():
        section = values.get(alias)
        if isinstance(section, dict) and alias in values:
            out.extend(_errors(section, sub, schemas, f"{prefix}{alias}."))
    return out
