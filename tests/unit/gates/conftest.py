"""The gates tests run torch in this process on one thread (the machine's cores are shared), imported
once for the session so that no single test pays for the import."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
