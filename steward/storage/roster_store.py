"""Apply a validated roster (one transaction), and read the roster back for listing and export.

Import is an upsert keyed by phone. Volunteers missing from the file are left as they are (their
history matters), and a removed volunteer stays removed even when listed again.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tortoise.transactions import in_transaction

from steward.flows.roster import (
    EXPORT_COLUMNS,
    RosterError,
    RosterPair,
    RosterPlan,
    RosterRow,
    export_phone,
    pair_size_errors,
)
from steward.storage.models import (
    GONE,
    Community,
    Pair,
    Role,
    Street,
    Volunteer,
    VolunteerStatus,
    Zone,
)

PairKey = tuple[str, str, str]  # (street, community, pair code)


class RosterRejected(Exception):
    """The roster is valid on its own but clashes with the database; nothing was written."""

    def __init__(self, errors: list[RosterError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class ImportSummary:
    """What an import did (or, for a dry run, would do)."""

    dry_run: bool
    added: int
    updated: int
    unchanged: int
    still_removed: int  # listed in the file but removed: updated, not re-activated
    new_streets: tuple[str, ...]
    new_communities: tuple[str, ...]
    new_pairs: tuple[str, ...]
    changed_pairs: tuple[str, ...]


@dataclass(frozen=True)
class RosterEntry:
    """One volunteer as stored, flattened for a table or a CSV."""

    street: str
    community: str
    pair: str
    zone: str
    name: str
    phone: str
    role: str
    language: str
    status: str
    patrol_start: str
    patrol_days: str
    birth: str
    volunteer_no: str
    joined: str  # YYYY-MM-DD


@dataclass
class _Snapshot:
    """The rows an import touches, loaded once and indexed by natural key."""

    streets: dict[str, Street] = field(default_factory=dict)
    communities: dict[tuple[str, str], Community] = field(default_factory=dict)
    zones: dict[tuple[str, str, str], Zone] = field(default_factory=dict)
    pairs: dict[PairKey, Pair] = field(default_factory=dict)
    volunteers: dict[str, Volunteer] = field(default_factory=dict)


async def apply_roster(plan: RosterPlan, *, dry_run: bool) -> ImportSummary:
    """Upsert the plan's places, pairs and volunteers in one transaction (none when dry_run)."""
    if dry_run:
        snapshot = await _load()
        _check_pair_sizes(plan, snapshot)
        return _summarise(plan, snapshot, dry_run=True)
    async with in_transaction():
        snapshot = await _load()
        _check_pair_sizes(plan, snapshot)
        summary = _summarise(plan, snapshot, dry_run=False)
        await _write(plan, snapshot)
    return summary


async def _load() -> _Snapshot:
    snapshot = _Snapshot()
    streets = {s.id: s for s in await Street.all()}
    snapshot.streets = {s.name: s for s in streets.values()}
    communities = {c.id: c for c in await Community.all()}
    for c in communities.values():
        snapshot.communities[(streets[c.street_id].name, c.name)] = c
    for z in await Zone.all():
        c = communities[z.community_id]  # type: ignore[attr-defined]
        snapshot.zones[(streets[c.street_id].name, c.name, z.name)] = z
    for p in await Pair.all():
        c = communities[p.community_id]
        snapshot.pairs[(streets[c.street_id].name, c.name, p.code)] = p
    snapshot.volunteers = {v.phone: v for v in await Volunteer.all()}
    return snapshot


def _check_pair_sizes(plan: RosterPlan, snapshot: _Snapshot) -> None:
    """Refuse the plan when a pair would reach three with the members it already has."""
    errors = pair_size_errors(plan, _stayers(plan, snapshot))
    if errors:
        raise RosterRejected(errors)


def _stayers(plan: RosterPlan, snapshot: _Snapshot) -> dict[PairKey, list[str]]:
    """Who is in each stored pair but not in the file ("name (phone)"), by the pair's key."""
    in_file = {row.phone for row in plan.rows}
    key_of = {p.id: key for key, p in snapshot.pairs.items()}
    stayers: dict[PairKey, list[str]] = {}
    for v in snapshot.volunteers.values():
        pair_id = v.pair_id
        if pair_id is not None and v.phone not in in_file and v.status not in GONE:
            stayers.setdefault(key_of[pair_id], []).append(f"{v.name} ({v.phone})")
    return stayers


def _summarise(plan: RosterPlan, snapshot: _Snapshot, *, dry_run: bool) -> ImportSummary:
    counts: Counter[str] = Counter()
    for row in plan.rows:
        stored = snapshot.volunteers.get(row.phone)
        if stored is None:
            counts["added"] += 1
        else:
            counts["unchanged" if _same_volunteer(stored, row, snapshot) else "updated"] += 1
            counts["still_removed"] += int(stored.status == VolunteerStatus.REMOVED)
    return ImportSummary(
        dry_run=dry_run,
        added=counts["added"],
        updated=counts["updated"],
        unchanged=counts["unchanged"],
        still_removed=counts["still_removed"],
        new_streets=_unique(r.street for r in plan.rows if r.street not in snapshot.streets),
        new_communities=_unique(
            f"{r.street}/{r.community}"
            for r in plan.rows
            if (r.street, r.community) not in snapshot.communities
        ),
        new_pairs=tuple(p.label for p in plan.pairs if p.key not in snapshot.pairs),
        changed_pairs=tuple(
            p.label
            for p in plan.pairs
            if p.key in snapshot.pairs and not _same_pair(snapshot.pairs[p.key], p, snapshot)
        ),
    )


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _same_pair(stored: Pair, pair: RosterPair, snapshot: _Snapshot) -> bool:
    zone = snapshot.zones.get((pair.street, pair.community, pair.zone))
    return (
        zone is not None
        and stored.zone_id == zone.id
        and stored.patrol_start == pair.patrol_start
        and stored.patrol_days == pair.patrol_days
    )


def _same_volunteer(stored: Volunteer, row: RosterRow, snap: _Snapshot) -> bool:
    community = snap.communities.get((row.street, row.community))
    pair = snap.pairs.get(row.pair_key) if row.pair_key else None
    return (
        community is not None
        and stored.street_id == community.street_id
        and stored.community_id == community.id
        and stored.pair_id == (pair.id if pair else None)
        and (row.pair_key is None or pair is not None)
        and stored.name == row.name
        and stored.role == row.role
        and stored.language == row.language
        and stored.birth == row.birth
        and stored.volunteer_no == row.volunteer_no
        and (row.joined is None or stored.joined_on == row.joined)
    )


async def _write(plan: RosterPlan, snap: _Snapshot) -> None:
    for row in plan.rows:
        await _community(snap, row.street, row.community)
    for pair in plan.pairs:
        await _pair(snap, pair)
    for row in plan.rows:
        await _volunteer(snap, row, plan.read_on)


async def _community(snap: _Snapshot, street_name: str, name: str) -> Community:
    street = snap.streets.get(street_name)
    if street is None:
        street = snap.streets[street_name] = await Street.create(name=street_name)
    community = snap.communities.get((street_name, name))
    if community is None:
        community = await Community.create(street=street, name=name)
        snap.communities[(street_name, name)] = community
    return community


async def _pair(snap: _Snapshot, pair: RosterPair) -> None:
    community = await _community(snap, pair.street, pair.community)
    zone_key = (pair.street, pair.community, pair.zone)
    zone = snap.zones.get(zone_key)
    if zone is None:
        zone = snap.zones[zone_key] = await Zone.create(community=community, name=pair.zone)
    stored = snap.pairs.get(pair.key)
    if stored is None:
        snap.pairs[pair.key] = await Pair.create(
            community=community,
            code=pair.code,
            zone=zone,
            patrol_start=pair.patrol_start,
            patrol_days=pair.patrol_days,
        )
    elif not _same_pair(stored, pair, snap):
        stored.zone = zone
        stored.patrol_start = pair.patrol_start
        stored.patrol_days = pair.patrol_days
        await stored.save(update_fields=["zone_id", "patrol_start", "patrol_days"])


async def _volunteer(snap: _Snapshot, row: RosterRow, read_on: date) -> None:
    community = snap.communities[(row.street, row.community)]
    values: dict[str, Any] = {
        "name": row.name,
        "role": Role(row.role),
        "language": row.language,
        "street": snap.streets[row.street],
        "community": community,
        "pair": snap.pairs[row.pair_key] if row.pair_key else None,
        "birth": row.birth,
        "volunteer_no": row.volunteer_no,
    }
    # A join date given in the file is the record; otherwise a newcomer joins the day it is read,
    # and someone already on the roster keeps the day they first joined.
    if row.joined is not None:
        values["joined_on"] = row.joined
    stored = snap.volunteers.get(row.phone)
    if stored is None:
        await Volunteer.create(phone=row.phone, **{"joined_on": read_on, **values})
    elif not _same_volunteer(stored, row, snap):
        # Status is not the roster's to change: a removed volunteer stays removed.
        stored.update_from_dict(values)
        await stored.save()


async def list_roster(*, include_removed: bool = True) -> list[RosterEntry]:
    """Return every volunteer with their place and pair, ordered street, community, pair, name."""
    query = Volunteer.all().prefetch_related("street", "community", "pair", "pair__zone")
    if not include_removed:
        query = query.exclude(status__in=GONE)
    entries = [_entry(v) for v in await query]
    return sorted(entries, key=_order)


def _entry(v: Volunteer) -> RosterEntry:
    pair: Pair | None = v.pair
    zone: Zone | None = pair.zone if pair else None
    return RosterEntry(
        street=v.street.name,
        community=v.community.name,
        pair=pair.code if pair else "",
        zone=zone.name if zone else "",
        name=v.name,
        phone=v.phone,
        role=str(v.role),
        language=v.language,
        status=str(v.status),
        patrol_start=pair.patrol_start if pair else "",
        patrol_days=pair.patrol_days if pair else "",
        birth=v.birth or "",
        volunteer_no=v.volunteer_no or "",
        joined=v.joined_on.isoformat(),
    )


_ROLE_ORDER = {"office": 0, "lead": 1, "steward": 2}


def _order(e: RosterEntry) -> tuple[str, str, int, str, str]:
    return (e.street, e.community, _ROLE_ORDER.get(e.role, 3), e.pair, e.phone)


async def export_roster() -> str:
    """Return the active roster as CSV text that `roster import` reads back unchanged."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    # Removed volunteers stay out: they are history, and a roster lists who serves now.
    for entry in await list_roster(include_removed=False):
        values = {column: getattr(entry, column) for column in EXPORT_COLUMNS}
        values["phone"] = export_phone(entry.phone)
        writer.writerow(values.values())
    return buffer.getvalue()
