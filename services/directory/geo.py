"""Places: US postcode centroids (offline, from the ``zipcodes`` package) and distances.

Example::

    >>> postcode_centroid("20001")
    {'postcode': '20001', 'latitude': 38.9122, 'longitude': -77.0177, 'state': 'DC', ...}
    >>> round(miles_between(38.9122, -77.0177, 38.8977, -77.0365), 1)
    1.4
"""
from __future__ import annotations

import math
import re
import threading

EARTH_RADIUS_MILES = 3958.8
POSTCODE = re.compile(r"^\d{5}(?:-\d{4})?$")

_index: dict[str, dict] | None = None
_lock = threading.Lock()


def _postcodes() -> dict[str, dict]:
    global _index
    if _index is None:
        with _lock:
            if _index is None:
                import zipcodes

                _index = {z["zip_code"]: z for z in zipcodes.list_all()}
    return _index


def is_postcode(value: str) -> bool:
    return bool(POSTCODE.match(value or ""))


def postcode_centroid(postcode: str) -> dict | None:
    """Centroid and place facts of a US ZIP code, or None when unknown."""
    if not is_postcode(postcode):
        return None
    z = _postcodes().get(postcode[:5])
    if z is None or not z.get("lat"):
        return None
    return {
        "postcode": z["zip_code"], "latitude": float(z["lat"]), "longitude": float(z["long"]),
        "state": z["state"], "city": z["city"], "county": z.get("county") or "",
        "timezone": z.get("timezone") or "",
    }


def miles_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) in miles."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lon: float, miles: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) enclosing the circle, for an index prefilter."""
    dlat = miles / 69.0
    dlon = miles / max(1e-6, 69.172 * math.cos(math.radians(lat)))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon
