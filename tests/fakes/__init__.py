"""Fakes of Baepo's interfaces, for unit tests of other rooms."""
