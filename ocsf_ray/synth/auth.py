"""Logins to the identity service as OCSF Authentication (3002) events.

Normal logins come from known users at their usual addresses and mostly succeed;
a few fail (typos). A credential-stuffing attack adds bursts of attempts that
follow the incident's strength minute by minute, from a small pool of addresses in
ranges no user has, against user names of which half do not exist; a few succeed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .ocsf import AUTHENTICATION, const, envelope, i32, lookup, product, struct, table
from .population import POOL_SIZE, attacker_pools, residential_ips
from .strings import concat, event_uids, hex_ids, ints

if TYPE_CHECKING:
    from .plan import Shard, World

SOURCE_CODE = 5
_PROTOCOLS = {6: "OAUTH 2.0", 4: "OpenID", 99: "Password"}
_LOGON_TYPES = {3: "Network", 2: "Interactive"}


def _attacks(world: World, shard: Shard, rng: np.random.Generator):
    """Times and incident of each attack attempt, following the attack's strength."""
    minutes = world.hour_start(shard.hour) + np.arange(60) * 60_000 + 30_000
    strength = np.zeros((len(world.incidents), 60))
    for i, inc in enumerate(world.incidents):
        if inc.kind.effect == "attack":
            strength[i] = inc.strength(np.full(60, inc.root), np.full(60, -1), minutes)[0]
    total = strength.sum(axis=0)
    if shard.attacks == 0 or total.sum() == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    minute = np.minimum(np.searchsorted(np.cumsum(total) / total.sum(), rng.random(shard.attacks)), 59)
    time = minutes[minute] - 30_000 + rng.integers(0, 60_000, shard.attacks)
    return time, strength[:, minute].argmax(axis=0)


def auth_events(world: World, shard: Shard, rng: np.random.Generator):
    """One part of an hour's logins: the OCSF table and per-row incident labels."""
    topo, pop = world.topology, world.population
    identity = topo.index("identity")
    attack_time, attack_incident = _attacks(world, shard, rng)
    n_normal, n_attack = shard.events, len(attack_time)
    n = n_normal + n_attack
    attack = np.arange(n) >= n_normal
    time = np.concatenate([world.load.sample_times(rng, shard.hour, n_normal), attack_time])
    incident = np.concatenate([np.full(n_normal, -1), attack_incident])

    user = np.where(attack, rng.integers(0, pop.size, n), pop.sample(rng, n))
    known = ~attack | (rng.random(n) < 0.5)
    name = pc.if_else(pa.array(known), pop.names.take(pa.array(user)),
                      concat("user", ints(rng.integers(100, 99_999, n))))
    pool = attacker_pools(world.config.seed, len(world.incidents))
    attack_ip = pool.take(pa.array(POOL_SIZE * np.maximum(incident, 0) + rng.integers(0, POOL_SIZE, n)))
    travelling = rng.random(n) < 0.08
    ip = pc.if_else(pa.array(attack), attack_ip,
                    pc.if_else(pa.array(travelling), residential_ips(rng, n), pop.ips.take(pa.array(user))))

    success = np.where(attack, known & (rng.random(n) < 0.03), rng.random(n) < 0.9)
    locked = attack & known & ~success & (rng.random(n) < 0.05)
    detail = np.select([success, locked, ~known], ["", "Account locked", "Unknown user"], "Invalid password")
    protocol = np.where(attack, np.where(rng.random(n) < 0.85, 99, 6),
                        np.array([6, 4, 99])[np.searchsorted([0.55, 0.85], rng.random(n))])
    logon = np.where(attack | (rng.random(n) < 0.85), 3, 2)
    # like most identity providers, a single failed login is routine, not an alert
    severity = np.select([locked, success], [4, np.where(rng.random(n) < 0.8, 1, 2)],
                         np.array([1, 2, 3])[np.searchsorted([0.4, 0.8], rng.random(n))])
    message = pc.if_else(pa.array(success), concat("User ", name, " logged in"),
                         concat("Login failed for ", name, ": ", pa.array(detail)))

    order = np.argsort(time, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    hosts = np.arange(topo.host_offsets[identity], topo.host_offsets[identity + 1])
    columns = envelope(
        (AUTHENTICATION,), np.zeros(n, dtype=np.int64),
        uid=event_uids(world.run_tag, SOURCE_CODE, shard.hour, shard.part, rank),
        product=product(const("keycloak", n), "Keycloak", const("25.0.6", n)),
        time=time, activity_id=np.ones(n, dtype=np.int64), severity_id=severity,
        status_id=np.where(success, 1, 2), message=message,
    )
    columns |= {
        "status_detail": pa.array(np.where(success, None, detail), pa.string()),
        "user": struct(name=name, uid=pop.uids.take(pa.array(user, mask=~known))),
        "src_endpoint": struct(ip=ip),
        "service": struct(name=const("identity", n)),
        "device": struct(hostname=pa.array(topo.host_names).take(pa.array(rng.choice(hosts, n)))),
        "auth_protocol_id": i32(protocol),
        "auth_protocol": lookup(_PROTOCOLS, protocol),
        "logon_type_id": i32(logon),
        "logon_type": lookup(_LOGON_TYPES, logon),
        "is_mfa": pa.array(~attack & success & (rng.random(n) < 0.4)),
        "session": struct(~success, uid=hex_ids(rng.integers(0, 2**62, n).astype(np.uint64), 12, "sess-")),
    }
    return table(columns, order), incident[order]
