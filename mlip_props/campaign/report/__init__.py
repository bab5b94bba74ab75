"""Campaign reports: results against experiment, as Markdown + HTML with PNG figures.

:func:`build_report` reads a results database, pairs predictions with the experimental reference
tables (see :mod:`mlip_props.campaign.reference`) and writes ``report.md``, ``report.html``,
``report.json`` (every number shown, full precision) and ``figures/*.png``:

* a parity plot per quantity (predicted vs experimental, y = x line, labelled points) with MAE,
  RMSE and R^2 = 1 - SS_res / SS_tot (R^2 is undefined, shown as "n/a", for fewer than 2
  points or no spread in the reference values); units on every axis;
* a table per quantity (structure, predicted, experimental, difference, relative difference,
  source), a table per property of the main scalar results, and the failed rows with errors;
* a convex hull (formation energy per atom vs composition, pymatgen ``PhaseDiagram``) for every
  binary system whose elements are present, from the ``energy`` (or ``relax``) rows.

The parts:

* :mod:`.quantities`: what is read from each result and compared with which reference column,
  in which unit (:data:`QUANTITIES`; committee rows through :func:`committee_views`);
* :mod:`.comparison`: predictions paired with reference rows, and :func:`parity_stats`;
* :mod:`.hulls`: binary convex hulls from the energy rows;
* :mod:`.document`: the Markdown/HTML writer and the number formats of its tables;
* :mod:`.figures`: parity plots, hulls, curves and dispersions (PNG);
* :mod:`.builder`: :func:`build_report`, section by section.
"""
from .builder import Report, build_report
from .comparison import parity_stats
from .figures import parity_figure
from .quantities import QUANTITIES, Quantity, collect_predictions, committee_views

__all__ = ["build_report", "Report", "parity_stats", "QUANTITIES", "Quantity", "collect_predictions",
           "committee_views", "parity_figure"]
