"""Species filters by place and season: keep (or down-weight) the species expected at a latitude, longitude and week.

Two sources say which species are expected:

* **BirdNET's location/season model** (the optional extra, :mod:`birdcall.birdnet.location`): an occurrence
  probability for each of BirdNET's 6522 species at ``(lat, lon, week)``. The model's species are matched to
  BirdNET's by scientific name (case-insensitive), so the model's labels must carry scientific names (a data
  set's ``taxonomy.csv`` gives them).
* **An occurrence table** (``--occurrence TABLE.csv``): CSV with the columns ``species_code, lat, lon, week,
  probability`` (others ignored), species matched by code. A query matches the table's **nearest grid cell**
  (the distinct ``(lat, lon)`` pairs of its rows, great-circle distance; ties go to the cell met first in the
  file) if it lies within ``radius_km``, else the query is refused. In that cell a species' probability is the
  largest of its rows whose ``week`` is the query's week or -1 (all year); a query for week -1 (all year) takes
  the largest over every week. A species with rows elsewhere in the table but none that match has probability 0.

Weeks are BirdNET's: 48 a year, four per month (week 1 starts on 1 January), or -1 for the whole year.

A species is **expected** when its probability is at least ``threshold`` (BirdNET-Analyzer's ``sf_thresh``,
0.03). In ``filter`` mode (the default) the others' scores become 0 and they are never detections; in ``weight``
mode each score is multiplied by ``min(1, probability / threshold)``, so expected species keep their scores
and the others are scaled down in proportion. A species the source does not know (no scientific name BirdNET
has; a code with no row in the table) keeps its scores, and :attr:`SpeciesFilter.unknown` lists it; a source
that knows none of the model's species is refused.

The filter is computed once per run (or per HTTP request) by :func:`species_filter` and applied to each file's
scores by :func:`birdcall.infer.run.file_table`, the step that ``analyze``, ``predict`` and ``serve`` share.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._validate import check_choice, check_float, is_int
from ..data.labels import LabelSet
from ..errors import DataError, MissingExtraError, ParameterError
from ..fileio import hash_files
from ..types import Pathlike

__all__ = [
    "DEFAULT_RADIUS_KM",
    "DEFAULT_THRESHOLD",
    "LOCATION_MODES",
    "OCCURRENCE_COLUMNS",
    "LocationOptions",
    "OccurrenceTable",
    "SpeciesFilter",
    "read_occurrence",
    "species_filter",
]

LOCATION_MODES = ("filter", "weight")
DEFAULT_THRESHOLD = 0.03  # BirdNET-Analyzer's sf_thresh (birdcall.birdnet.location.BIRDNET_SF_THRESHOLD)
DEFAULT_RADIUS_KM = 50.0
OCCURRENCE_COLUMNS = ("species_code", "lat", "lon", "week", "probability")
EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)
PYTHON_NAMES = {"lat": "lat", "lon": "lon", "week": "week", "mode": "mode", "threshold": "threshold", "radius_km": "radius_km"}
CLI_NAMES = {"lat": "--lat", "lon": "--lon", "week": "--week", "mode": "--location-mode", "threshold": "--location-threshold",
             "radius_km": "--occurrence-radius"}  # fmt: skip


def check_location(*, lat, lon, week, mode="filter", threshold=DEFAULT_THRESHOLD, radius_km=DEFAULT_RADIUS_KM,
                   names: Mapping[str, str] = PYTHON_NAMES) -> tuple[float, float, int]:  # fmt: skip
    """Validate a query; errors name each value as ``names`` spells it (the CLI passes :data:`CLI_NAMES`).

    Returns:
        ``(lat, lon, week)`` as float, float, int.

    Raises:
        ParameterError: one line naming the value: lat outside [-90, 90], lon outside [-180, 180], week not an
            integer in 1-48 or -1, an unknown mode, threshold outside (0, 1], radius not > 0.
    """
    if lat is None or lon is None:
        given = names["lat"] if lat is not None else names["lon"] if lon is not None else names["week"]
        raise ParameterError(f"{given} needs both {names['lat']} and {names['lon']} (a place), and optionally {names['week']}")
    lat = check_float(names["lat"], lat, min=-90.0, max=90.0)
    lon = check_float(names["lon"], lon, min=-180.0, max=180.0)
    if week is None:
        week = -1
    if isinstance(week, float) and week.is_integer():
        week = int(week)
    if not is_int(week) or not (week == -1 or 1 <= week <= 48):
        raise ParameterError(f"{names['week']} must be a week of the year in 1-48 (four per month) or -1 (all year), got {week!r}")
    check_choice(names["mode"], mode, LOCATION_MODES)
    check_float(names["threshold"], threshold, min=0.0, max=1.0, min_inclusive=False)
    check_float(names["radius_km"], radius_km, min=0.0, min_inclusive=False)
    return lat, lon, int(week)


@dataclass(frozen=True)
class LocationOptions:
    """Where and when the recordings were made, and what to do with the species not expected there.

    Attributes:
        lat: degrees north, in [-90, 90].
        lon: degrees east, in [-180, 180].
        week: BirdNET's week of the year, 1-48 (four per month), or -1 for the whole year.
        mode: ``filter`` (unexpected species removed) or ``weight`` (scores scaled by ``min(1, p / threshold)``).
        threshold: lowest occurrence probability of an expected species (BirdNET's ``sf_thresh``).
        occurrence: an occurrence table (CSV path) to use instead of BirdNET's location model.
        radius_km: farthest distance from the query to the table's nearest grid cell (table only).
    """

    lat: float
    lon: float
    week: int = -1
    mode: str = "filter"
    threshold: float = DEFAULT_THRESHOLD
    occurrence: str | None = None
    radius_km: float = DEFAULT_RADIUS_KM

    def __post_init__(self) -> None:
        lat, lon, week = check_location(lat=self.lat, lon=self.lon, week=self.week, mode=self.mode, threshold=self.threshold, radius_km=self.radius_km)
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "lon", lon)
        object.__setattr__(self, "week", week)
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "radius_km", float(self.radius_km))
        if self.occurrence is not None:
            object.__setattr__(self, "occurrence", str(self.occurrence))

    @classmethod
    def from_cli(cls, *, lat, lon, week, mode, threshold, occurrence, radius_km) -> LocationOptions | None:
        """The options of the command-line flags (None when none of ``--lat/--lon/--week`` is given); errors name the flags."""
        if lat is None and lon is None and week is None:
            return None
        lat, lon, week = check_location(lat=lat, lon=lon, week=week, mode=mode, threshold=threshold, radius_km=radius_km, names=CLI_NAMES)
        return cls(lat, lon, week, mode, threshold, str(occurrence) if occurrence is not None else None, radius_km)


@dataclass(frozen=True)
class OccurrenceTable:
    """An occurrence table read by :func:`read_occurrence`: one entry per row, and the file's digest."""

    path: str
    digest: str
    codes: np.ndarray  # (rows,) object
    lat: np.ndarray  # (rows,) float64
    lon: np.ndarray
    week: np.ndarray  # (rows,) int64, -1: all year
    probability: np.ndarray  # (rows,) float64

    def probabilities(self, codes, *, lat: float, lon: float, week: int, radius_km: float) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities, known)`` of each code at the query (module docstring: the matching rule).

        Raises:
            ParameterError: no grid cell within ``radius_km`` of the query.
        """
        cells, first = np.unique(np.stack([self.lat, self.lon], axis=1), axis=0, return_index=True)
        cells = cells[np.argsort(first, kind="stable")]  # file order: ties go to the cell met first
        distance = haversine_km(lat, lon, cells[:, 0], cells[:, 1])
        nearest = int(np.argmin(distance))
        if distance[nearest] > radius_km:
            raise ParameterError(f"{self.path}: no grid cell within {radius_km:g} km of lat {lat:g}, lon {lon:g} "
                                 f"(the nearest is {distance[nearest]:.0f} km away)")  # fmt: skip
        in_cell = (self.lat == cells[nearest, 0]) & (self.lon == cells[nearest, 1])
        if week != -1:
            in_cell &= (self.week == week) | (self.week == -1)
        best: dict[str, float] = {}
        for code, p in zip(self.codes[in_cell], self.probability[in_cell]):
            best[code] = max(best.get(code, 0.0), float(p))
        listed = set(self.codes)
        known = np.array([c in listed for c in codes], dtype=bool)
        return np.array([best.get(c, 0.0) for c in codes], dtype=np.float64), known


def haversine_km(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """Great-circle distances (km) from one point to each of ``(lats, lons)``, on a sphere of :data:`EARTH_RADIUS_KM`."""
    phi1, phi2 = math.radians(lat), np.radians(lats)
    dphi, dlambda = phi2 - phi1, np.radians(lons) - math.radians(lon)
    h = np.sin(dphi / 2) ** 2 + math.cos(phi1) * np.cos(phi2) * np.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def read_occurrence(path: Pathlike) -> OccurrenceTable:
    """Read an occurrence table: CSV with a header naming at least :data:`OCCURRENCE_COLUMNS`.

    Raises:
        DataError: one line naming the file (and the line, for a bad row): missing or unreadable file, missing
            columns, no rows, an empty code, lat/lon/probability not a number or out of range, a week not in
            1-48 or -1.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "occurrence table not found" if not p.exists() else "occurrence table is not a regular file")
    rows: list[tuple[str, float, float, int, float]] = []
    try:
        with p.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in OCCURRENCE_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise DataError(p, f"occurrence table lacks column(s) {missing}; it needs {list(OCCURRENCE_COLUMNS)}")
            for row in reader:
                rows.append(_occurrence_row(p, reader.line_num, row))
    except UnicodeDecodeError:
        raise DataError(p, "occurrence table is not UTF-8 text") from None
    except csv.Error as err:
        raise DataError(p, f"line {reader.line_num}: not valid CSV ({err})") from None
    except OSError as err:
        raise DataError(p, f"cannot read occurrence table ({err.strerror or err})") from None
    if not rows:
        raise DataError(p, "occurrence table has no rows")
    codes, lat, lon, week, probability = zip(*rows)
    return OccurrenceTable(str(p), hash_files([p]), np.array(codes, dtype=object), np.array(lat), np.array(lon),
                           np.array(week, dtype=np.int64), np.array(probability))  # fmt: skip


def _occurrence_row(path: Path, line: int, row: dict) -> tuple[str, float, float, int, float]:
    def bad(what: str) -> DataError:
        return DataError(path, f"line {line}: {what}")

    if None in row.values() or None in row:
        raise bad("wrong number of fields")
    code = row["species_code"].strip()
    if not code:
        raise bad("empty species_code")
    values = {}
    for name, low, high in (("lat", -90.0, 90.0), ("lon", -180.0, 180.0), ("probability", 0.0, 1.0)):
        try:
            value = float(row[name])
        except ValueError:
            raise bad(f"{name} {row[name]!r} is not a number") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise bad(f"{name} {value:g} is outside [{low:g}, {high:g}]")
        values[name] = value
    try:
        week = int(row["week"])
    except ValueError:
        raise bad(f"week {row['week']!r} is not an integer") from None
    if not (week == -1 or 1 <= week <= 48):
        raise bad(f"week {week} is not in 1-48 or -1 (all year)")
    return code, values["lat"], values["lon"], week, values["probability"]


@dataclass(frozen=True)
class SpeciesFilter:
    """A location filter computed for one model's species: what :func:`apply` multiplies each score by.

    Attributes:
        codes: the model's species codes.
        probabilities: occurrence probability of each code (0 where unknown).
        weights: score multiplier of each code: 0 or 1 (``filter``), ``min(1, p / threshold)`` (``weight``), 1 when unknown.
        mode: ``filter`` or ``weight``.
        unknown: codes the source does not know (kept as they are).
        settings: what a run records (run.json) and a resume compares: the query, mode, threshold, source and its digest.
    """

    codes: tuple[str, ...]
    probabilities: np.ndarray
    weights: np.ndarray
    mode: str
    unknown: tuple[str, ...] = ()
    settings: dict = field(default_factory=dict)

    @property
    def excluded(self) -> tuple[str, ...]:
        """The codes a ``filter`` removes (none in ``weight`` mode)."""
        if self.mode != "filter":
            return ()
        return tuple(c for c, w in zip(self.codes, self.weights) if w == 0.0)

    @property
    def expected(self) -> tuple[str, ...]:
        """The codes expected there and then (weight 1)."""
        return tuple(c for c, w in zip(self.codes, self.weights) if w == 1.0)

    def apply(self, scores: pd.DataFrame) -> pd.DataFrame:
        """``scores`` (one column per code) with each column multiplied by its weight; dtypes kept."""
        weight = dict(zip(self.codes, self.weights.tolist()))
        out = scores.copy()
        for column in out.columns:
            w = weight.get(str(column), 1.0)
            if w != 1.0:
                out[column] = (out[column] * w).astype(out[column].dtype)
        return out


def species_filter(options: LocationOptions, labels: LabelSet, *, table: OccurrenceTable | None = None) -> SpeciesFilter:
    """The filter of ``options`` for the species of ``labels``.

    Args:
        options: the query, mode and source.
        labels: the model's species.
        table: the table of ``options.occurrence`` already read (the server reads it once); None: read it.

    Raises:
        MissingExtraError: no occurrence table and no BirdNET extra (one line naming both ways).
        ParameterError: the source knows none of the model's species (or BirdNET's model, and the labels have no
            scientific names); no grid cell of the table near the query.
        DataError: a malformed occurrence table.
    """
    if not isinstance(options, LocationOptions):
        raise ParameterError(f"location must be a LocationOptions, got {type(options).__name__}")
    codes = tuple(labels.codes)
    settings = {"lat": options.lat, "lon": options.lon, "week": options.week, "mode": options.mode, "threshold": options.threshold}
    if options.occurrence is not None or table is not None:
        table = table if table is not None else read_occurrence(options.occurrence)
        probabilities, known = table.probabilities(codes, lat=options.lat, lon=options.lon, week=options.week, radius_km=options.radius_km)
        settings.update(source="occurrence", occurrence=Path(table.path).name, digest=table.digest, radius_km=options.radius_km)
        where = f"the occurrence table {table.path}"
    else:
        if not labels.scientific_names or not any(labels.scientific_names):
            raise ParameterError("the model's species carry no scientific names, which BirdNET's location model matches; "
                                 "give an occurrence table keyed by species code (--occurrence TABLE.csv)")  # fmt: skip
        model = _birdnet_location_model()
        probabilities, known = model.probabilities(labels.scientific_names, options.lat, options.lon, options.week)
        probabilities = probabilities.astype(np.float64)
        settings.update(source="birdnet", digest=model.digest)
        where = f"{model.name}"
    if not known.any():
        raise ParameterError(f"{where} knows none of the model's {len(codes)} species")
    if options.mode == "filter":
        weights = np.where(known, (probabilities >= options.threshold).astype(np.float64), 1.0)
    else:
        weights = np.where(known, np.minimum(1.0, probabilities / options.threshold), 1.0)
    unknown = tuple(c for c, k in zip(codes, known) if not k)
    settings["unknown"] = len(unknown)
    return SpeciesFilter(codes, probabilities, weights, options.mode, unknown, settings)


def _birdnet_location_model():
    from ..birdnet.location import location_model

    try:
        return location_model()
    except MissingExtraError as err:
        raise MissingExtraError(
            "--lat/--lon/--week need a source of expected species: BirdNET's location model (the optional extra: "
            f"`make birdnet`) or an occurrence table (--occurrence TABLE.csv); {err}"
        ) from None

