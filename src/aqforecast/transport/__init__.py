"""Transport operators (DESIGN.md layer 4): advection, vertical mixing, wet scavenging.

Public, stable: :func:`advect` (advect an arbitrary 3-D field with face Courant numbers).
Operators for the model: :class:`Advection`, :class:`VerticalMixing`, :class:`WetScavenging`.
"""

from .advection import Advection, advect
from .vertical import VerticalMixing, WetScavenging

__all__ = ["Advection", "advect", "VerticalMixing", "WetScavenging"]
