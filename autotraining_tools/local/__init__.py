"""The embedded run: the whole stack on one machine against a moto server (see ``autotraining local``)."""
