"""The MongoDB repository (PyMongo ``AsyncMongoClient``) and its indexes."""
