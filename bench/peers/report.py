"""The peers table: each system under each setting with its three figures, and Sluice's ratio to each peer at the
same durability (Sluice with synchronous_commit on beside the peers' fsync-every-write settings, off beside their
defaults, which acknowledge before the fsync)."""

from __future__ import annotations

from bench.harness import Comparison
from bench.peers.workload import PeerFigures

SETTING_WIDTH = 58
HEADER = (
    f"{'system':<15} {'setting':<{SETTING_WIDTH}} {'produce ev/s':>12} {'consume ev/s':>12} {'e2e p50 ms':>10} "
    f"{'e2e p99 ms':>10}  Sluice/this at the same durability: produce, consume, e2e p99 (<1x: Sluice faster)"
)


def matching_sluice(figures: list[PeerFigures], peer: PeerFigures) -> PeerFigures | None:
    """Sluice's figures at the same durability as ``peer`` (None when Sluice was not measured so)."""
    for candidate in figures:
        if candidate.system == "Sluice" and candidate.fsync_per_write == peer.fsync_per_write:
            return candidate
    return None


def ratio_text(figures: list[PeerFigures], row: PeerFigures) -> str:
    if row.system == "Sluice":
        return ""
    sluice = matching_sluice(figures, row)
    if sluice is None:
        return "-"
    return (
        f"{sluice.produce_rate / row.produce_rate:.2f}x, {sluice.consume_rate / row.consume_rate:.2f}x, "
        f"{sluice.latency_p99 / row.latency_p99:.2f}x"
    )


def format_table(figures: list[PeerFigures]) -> str:
    lines = [HEADER, "-" * len(HEADER)]
    for row in figures:
        lines.append(
            f"{row.system:<15} {row.setting:<{SETTING_WIDTH}} {row.produce_rate:>12,.0f} {row.consume_rate:>12,.0f} "
            f"{row.latency_p50:>10.1f} {row.latency_p99:>10.1f}  {ratio_text(figures, row)}".rstrip()
        )
    return "\n".join(lines)


def short_name(peer: PeerFigures) -> str:
    return f"{peer.system.split()[0]} {'fsync' if peer.fsync_per_write else 'default'}"


def comparisons(figures: list[PeerFigures]) -> list[Comparison]:
    """Sluice against each peer row at the same durability, as rows of the bench's common report (the baseline
    column is the peer)."""
    rows = []
    for peer in figures:
        sluice = matching_sluice(figures, peer)
        if peer.system == "Sluice" or sluice is None:
            continue
        name = short_name(peer)
        rows.append(Comparison(f"produce vs {name}", sluice.produce_rate, peer.produce_rate, "ev/s"))
        rows.append(Comparison(f"consume vs {name}", sluice.consume_rate, peer.consume_rate, "ev/s"))
        rows.append(Comparison(f"e2e p99 vs {name}", sluice.latency_p99, peer.latency_p99, "ms"))
    return rows
