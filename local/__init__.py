"""Offline stack of the project: the SAM template in moto, in-process Lambdas, service emulators."""
