//! Directory Service: directories, registered certificates, LDAPS, client authentication.
