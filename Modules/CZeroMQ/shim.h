#ifndef PSTRAIN_CZEROMQ_SHIM_H
#define PSTRAIN_CZEROMQ_SHIM_H
#include <zmq.h>
#include <errno.h>
#endif
