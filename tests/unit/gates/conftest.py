"""The gates tests run torch in this process on one thread (the machine's cores are shared); torch and
scikit-learn's digits (and torch's optimizers) are loaded once for the session, so that no single test pays for the imports."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    import torch

    from h3spark.ingest import load_bundled

    load_bundled("digits")
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # the first optimizer imports torch._dynamo (seconds)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
