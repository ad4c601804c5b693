"""The use cases over the in-memory fakes of every port."""
