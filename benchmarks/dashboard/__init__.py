"""The benchmark dashboard: one self-contained HTML page of the history's runs that opens with no network.

page.py builds it: the template, stylesheet and scripts beside it are inlined at build time and the runs are
embedded as JSON, so the page is one file to open, mail or attach to CI. The scripts draw the plots as SVG
themselves (charts.js is the small plotting kit; there is no library to load offline).
"""

from optimizer.benchmarks.dashboard.page import render_dashboard, write_dashboard

__all__ = ["render_dashboard", "write_dashboard"]
