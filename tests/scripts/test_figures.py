"""The docs' generated parts: the bench table in results.md is the one its JSON gives."""

import json
from pathlib import Path

from nfloop.scripts.figures import BENCH_FILE, with_bench_table

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_results_bench_table_is_generated_from_the_bench_figures():
    page = (DOCS / "results.md").read_text()
    bench = json.loads((DOCS / "figures" / BENCH_FILE).read_text())
    assert with_bench_table(page, bench) == page


def test_a_board_without_a_timed_build_says_so():
    bench = {"boards": {"boards": [{"board": "b", "clock_hz": 1e8, "lanes": 16, "cycles_per_step": 367,
                                    "steps_per_second": 272_479, "over_reference": 16.1, "streamed_steps_per_second": 3,
                                    "meets_timing": False, "fmax_mhz": 94.04},
                                   {"board": "c", "clock_hz": 1e8, "lanes": 1, "cycles_per_step": 5150,
                                    "steps_per_second": 1, "over_reference": 0.1, "streamed_steps_per_second": 1}]}}
    page = with_bench_table("a\n<!-- bench-boards -->\nold\n<!-- /bench-boards -->\nz", bench)
    assert "| b | 100 MHz | 16 | 367 | 272,479 | 16.10x | 3 | misses, 94.0 MHz |" in page
    assert page.endswith("| missing |\n<!-- /bench-boards -->\nz") and "old" not in page
