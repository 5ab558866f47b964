# Stubs of the compiled binding layer tritondiv._core. Every array argument must already be
# a C-contiguous numpy array of the stated dtype; the Python facade coerces before calling.
import numpy as np
import numpy.typing as npt

openmp: bool

def num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
