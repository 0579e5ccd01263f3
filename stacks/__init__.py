"""The StanFleet AWS CDK app: storage, compute and trigger constructs, composed by ``StanFleetStack``."""
