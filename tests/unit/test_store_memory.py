"""The repository contract on the in-memory implementation."""

from __future__ import annotations

import pytest

from store.memory import MemoryCustomerRepository
from tests.store_contract import HOT_ORDERS, ID_SLACK, ORDER_SLACK, CustomerRepositoryContract


class TestMemoryRepository(CustomerRepositoryContract):
    @pytest.fixture
    def repo(self) -> MemoryCustomerRepository:
        return MemoryCustomerRepository(hot_orders=HOT_ORDERS, order_slack=0, id_slack=0)

    @pytest.fixture
    def slack_repo(self) -> MemoryCustomerRepository:
        return MemoryCustomerRepository(
            hot_orders=HOT_ORDERS, order_slack=ORDER_SLACK, id_slack=ID_SLACK
        )
