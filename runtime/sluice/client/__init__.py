"""``sluice.client``: the typed async Python client of a Sluice server's gRPC API.

from sluice.client import SluiceClient

async with await SluiceClient.connect("localhost:50051", token="...") as client:
    await client.append("orders", [OrderPlaced(order_id="o-1")])
"""

from sluice.client.client import SluiceClient
from sluice.client.group_consumption import GroupEvent, RemoteGroupConsumption
from sluice.client.queue_receiver import QueueReceiver, ReceivedMessage
from sluice.client.received import ReceivedEvent
from sluice.client.settings import ClientTls
from sluice.client.subscription import Subscription

__all__ = [
    "ClientTls",
    "GroupEvent",
    "QueueReceiver",
    "ReceivedEvent",
    "ReceivedMessage",
    "RemoteGroupConsumption",
    "SluiceClient",
    "Subscription",
]
