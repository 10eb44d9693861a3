"""The repository contract on the in-memory implementation."""

from __future__ import annotations

import pytest

from store.memory import MemoryCustomerRepository
from tests.store_contract import HOT_ORDERS, CustomerRepositoryContract


class TestMemoryRepository(CustomerRepositoryContract):
    @pytest.fixture
    def repo(self) -> MemoryCustomerRepository:
        return MemoryCustomerRepository(hot_orders=HOT_ORDERS)
