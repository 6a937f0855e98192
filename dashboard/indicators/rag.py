"""RAG thresholds a council can override: ``settings.thresholds_file``, YAML of
``{indicator_id: {green: x, amber: y}}``. A bad file is an error naming the file and the key."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from dashboard.indicators.catalogue import DEFINITIONS, Definition
from dashboard.model import Thresholds


class ThresholdsFileError(ValueError):
    """A thresholds file that cannot be used; the message names the file and the key."""


def load_overrides(
    path: Path, definitions: Mapping[str, Definition] = DEFINITIONS
) -> dict[str, Thresholds]:
    """Parse a thresholds file into {indicator_id: Thresholds} for the ids in ``definitions``."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ThresholdsFileError(f"{path}: cannot be read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ThresholdsFileError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ThresholdsFileError(f"{path}: must map indicator ids to {{green: x, amber: y}}")
    out: dict[str, Thresholds] = {}
    for key, bands in raw.items():
        definition = definitions.get(str(key))
        if definition is None:
            raise ThresholdsFileError(f"{path}, key '{key}': unknown indicator id")
        if definition.indicator.polarity == "context" and definition.rag_from is None:
            raise ThresholdsFileError(
                f"{path}, key '{key}': a context indicator has no RAG (no better direction)"
            )
        if not isinstance(bands, dict) or set(bands) != {"green", "amber"}:
            raise ThresholdsFileError(f"{path}, key '{key}': give exactly green and amber")
        try:
            green, amber = float(bands["green"]), float(bands["amber"])
        except (TypeError, ValueError):
            raise ThresholdsFileError(
                f"{path}, key '{key}': green and amber must be numbers"
            ) from None
        if definition.indicator.polarity == "higher_better" and green < amber:
            raise ThresholdsFileError(
                f"{path}, key '{key}': higher is better, so green must be >= amber"
            )
        if definition.indicator.polarity == "lower_better" and green > amber:
            raise ThresholdsFileError(
                f"{path}, key '{key}': lower is better, so green must be <= amber"
            )
        out[str(key)] = Thresholds(green, amber)
    return out


def effective_thresholds(
    path: Path | None, definitions: Mapping[str, Definition] = DEFINITIONS
) -> Mapping[str, Thresholds | None]:
    """Every indicator's thresholds: the declared defaults, overridden by the file if given.

    ``definitions`` is the catalogue in use (the data layer's includes indicators declared in
    dataset files, so a council can override their thresholds too).
    """
    table: dict[str, Thresholds | None] = {
        key: definition.indicator.thresholds for key, definition in definitions.items()
    }
    if path is not None:
        table.update(load_overrides(path, definitions))
    return table
