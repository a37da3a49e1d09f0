import pytest

from connectors.memory import MemoryConnector
from tests.contract import ConnectorContract


class TestMemoryContract(ConnectorContract):
    @pytest.fixture
    def connector(self):
        return MemoryConnector("memory")

    @pytest.fixture
    def sample_fields(self):
        return {"title": "12345678901234 - Portal down", "status": "open"}

    @pytest.fixture
    def human_edit(self, connector):
        return lambda remote_id, fields: connector.edit(remote_id, **fields)
