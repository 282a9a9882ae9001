"""The gates tests run torch in this process on one thread (the machine's cores are shared). torch,
its optimizers, scikit-learn's digits and the CLI's commands are loaded once for the session, so
that no single test pays for the imports."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    import torch

    from h3spark.cli._main import build_parser
    from h3spark.ingest import load_bundled

    load_bundled("digits")
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # the first optimizer imports torch._dynamo (seconds)
    build_parser()  # imports every command's module

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
