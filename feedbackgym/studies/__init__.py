"""Studies: regret studies and training runs; config -> runs -> results, local and Ray backends."""

from feedbackgym.studies.regret import RegretStudy, run_cell
from feedbackgym.studies.runner import run_study, write_results

__all__ = ["RegretStudy", "run_cell", "run_study", "write_results"]
