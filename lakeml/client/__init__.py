"""Client layer: the explicit :class:`~lakeml.client.lake.Lake` and the fluent API on top."""
