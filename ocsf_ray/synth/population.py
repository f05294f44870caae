"""Who uses the system: users with names, ids, home IPs and browsers, plus attackers.

Activity per user is Zipf-like (a few heavy users, a long tail), as in real access
logs; a credential-stuffing attack stands out by coming from address ranges and
clients no user has, while trying many user names, some of which do not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .strings import concat, ints, ipv4

_FIRST = ("alice", "bob", "carol", "david", "erin", "frank", "grace", "heidi", "ivan", "judy",
          "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "wendy",
          "yusuf", "zoe", "omar", "priya", "chen", "lucia", "mateo", "aiko", "noah", "emma", "liam")
_LAST = ("smith", "brown", "jones", "garcia", "miller", "davis", "lopez", "wilson", "taylor",
         "thomas", "moore", "martin", "lee", "walker", "hall", "young", "king", "wright", "scott",
         "green", "baker", "adams", "nelson", "hill", "campbell", "mitchell", "roberts", "kim")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36",
    "ShopApp/4.12.0 (iOS 17.2; iPhone15,2)",
    "ShopApp/4.11.3 (Android 14; SM-S918B)",
)
ATTACK_AGENTS = (
    "python-requests/2.31.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
    "curl/8.4.0",
    "Go-http-client/1.1",
)
_HOME_PREFIXES = np.array([[73], [98], [24], [81], [86], [174], [2], [92]])
_ATTACK_PREFIXES = np.array([[45, 155], [193, 32], [185, 220], [103, 75], [141, 98]])


@dataclass(frozen=True)
class Population:
    names: pa.StringArray  # "david.brown"
    uids: pa.StringArray  # "user-1004"
    ips: pa.StringArray  # usual source address
    agents: np.ndarray  # index into USER_AGENTS
    cumulative: np.ndarray  # activity distribution, for inverse-CDF sampling

    @property
    def size(self) -> int:
        return len(self.names)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.minimum(np.searchsorted(self.cumulative, rng.random(n)), self.size - 1)


def build_population(n_users: int, rng: np.random.Generator) -> Population:
    combo = rng.permutation(n_users)  # unique first.last[N] names in random order
    first, rest = np.divmod(combo, len(_FIRST))[::-1]
    last, repeat = np.divmod(rest, len(_LAST))[::-1]
    suffix = pc.if_else(pa.array(repeat == 0), "", ints(repeat + 1))
    names = concat(pa.array(_FIRST).take(pa.array(first)), ".",
                   pa.array(_LAST).take(pa.array(last)), suffix)
    weights = 1.0 / np.arange(1, n_users + 1) ** 0.8
    weights = weights[rng.permutation(n_users)]
    return Population(
        names=names,
        uids=concat("user-", ints(1000 + np.arange(n_users))),
        ips=residential_ips(rng, n_users),
        agents=rng.integers(0, len(USER_AGENTS), n_users),
        cumulative=np.cumsum(weights) / weights.sum(),
    )


def residential_ips(rng: np.random.Generator, n: int) -> pa.StringArray:
    """Addresses in the consumer ranges users live in (home, or travelling)."""
    first = _HOME_PREFIXES[rng.integers(0, len(_HOME_PREFIXES), n), 0]
    return ipv4(np.column_stack([first, rng.integers(1, 255, (n, 3))]))


def attacker_ips(rng: np.random.Generator, n: int) -> pa.StringArray:
    """Addresses from hosting ranges that no simulated user lives in."""
    prefix = _ATTACK_PREFIXES[rng.integers(0, len(_ATTACK_PREFIXES), n)]
    return ipv4(np.column_stack([prefix, rng.integers(1, 255, (n, 2))]))


POOL_SIZE = 40


def attacker_pools(seed: int, incidents: int) -> pa.StringArray:
    """The few dozen addresses each attack comes from (incident i: rows 40 i to 40 i + 39),
    reused across its bursts; logs and logins of one attack share them."""
    pools = [attacker_ips(np.random.default_rng([seed, 99, i]), POOL_SIZE) for i in range(max(1, incidents))]
    return pa.concat_arrays(pools)

