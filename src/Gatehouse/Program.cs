using Gatehouse.Cli;

return await GatehouseCli.Create().Parse(args).InvokeAsync().ConfigureAwait(false);
