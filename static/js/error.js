/* An error page still shows the shopper's cart badge and any payment in flight. */
Store.start();
