"""In-memory fakes of every port. They keep state so tests assert outcomes."""
