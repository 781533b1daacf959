"""People as teachers: the ``human`` teacher, the label folder it shares with the label server,
the labelling page (``page/``) and the calibration of simulated teachers to a person's answers.

- :mod:`~feedbackgym.feedback.human.teacher`: :class:`HumanTeacher` renders clips and waits
  for answers in a :class:`LabelQueue` folder.
- :mod:`~feedbackgym.feedback.human.queue`: the label folder (queries, leases, answers).
- :mod:`~feedbackgym.feedback.human.server`: the web app behind ``feedbackgym label``.
- :mod:`~feedbackgym.feedback.human.calibration`: ``feedbackgym calibrate``.
"""

from feedbackgym.feedback.human.queue import LabelQueue
from feedbackgym.feedback.human.teacher import HumanTeacher, register_state_setter

__all__ = ["HumanTeacher", "LabelQueue", "register_state_setter"]
