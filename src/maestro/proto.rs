//! Generated from proto/cloudevent.proto by build.rs.
#![allow(clippy::all, clippy::pedantic, missing_docs)]

tonic::include_proto!("io.cloudevents.v1");
