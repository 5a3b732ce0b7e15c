exec /gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12/bin/hello
