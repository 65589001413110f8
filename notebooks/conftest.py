"""nbval's patience with a busy machine.

After a cell finishes, nbval waits only 5 s for each of its remaining output messages. A cell
that streams many live plots (03_2's training loss) can exceed that on a loaded 2-core machine
and fail with "Timeout of 5 seconds exceeded waiting for output", although nothing is wrong.
Give it 60 s; a cell that really hangs is still stopped by ``--nbval-cell-timeout``.
"""

OUTPUT_TIMEOUT_S = 60


def pytest_collection_modifyitems(items):
    for item in items:
        if hasattr(item, "output_timeout"):  # nbval's cells (IPyNbCell)
            item.output_timeout = OUTPUT_TIMEOUT_S
