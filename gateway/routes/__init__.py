"""Gateway routes, one module per bounded context, mixed into GatewayService."""
