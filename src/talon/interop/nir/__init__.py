"""NIR exchange: talon graphs <-> NIR graphs and ``.nir`` files (``docs/nir.md``).

* :func:`to_nir` / :func:`write_nir`: a talon graph as a ``nir.NIRGraph`` / ``.nir`` file whose
  forward-Euler dynamics at ``dt`` (seconds, default ``1e-4``) are exactly talon's; behaviour NIR
  cannot state is refused, or, with ``lossy=True``, approximated with a warning and a record.
* :func:`from_nir` / :func:`read_nir`: any NIR graph or file (every nir version) as a talon graph.

Reading needs only h5py; ``to_nir`` / ``write_nir`` and ``nir.NIRGraph`` inputs need the ``nir``
package (talon's ``nir`` extra). torch and jax are never imported.
"""

from ._common import DEFAULT_DT, LossyConversionWarning, MissingDtWarning, NIRFormatError, ShortTimeConstantWarning
from .exporter import NIRCompatibilityWarning, to_nir, write_nir
from .importer import from_nir, read_nir
from .profiles import PROFILES
from .reset_conventions import ResetGradientWarning
from .surrogate_conventions import SurrogateWarning

__all__ = [
    "DEFAULT_DT",
    "PROFILES",
    "LossyConversionWarning",
    "MissingDtWarning",
    "NIRCompatibilityWarning",
    "NIRFormatError",
    "ResetGradientWarning",
    "ShortTimeConstantWarning",
    "SurrogateWarning",
    "from_nir",
    "read_nir",
    "to_nir",
    "write_nir",
]
