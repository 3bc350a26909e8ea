using System.Text.Json;
using System.Text.Json.Nodes;
using Gatehouse.Admin.Operations;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Admin;

/// <summary>A refusal or failure of an admin API call, written as RFC 7807 problem+json with a sentence that says what to do.</summary>
internal sealed class AdminProblemException : Exception
{
    public AdminProblemException()
    {
    }

    public AdminProblemException(string message)
        : base(message)
    {
    }

    public AdminProblemException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public AdminProblemException(int status, string title, string detail)
        : base(detail)
    {
        Status = status;
        Title = title;
    }

    public int Status { get; } = StatusCodes.Status400BadRequest;

    public string Title { get; } = "Bad request";

    public static AdminProblemException NotFound(string detail) => new(StatusCodes.Status404NotFound, "Not found", detail);

    public static AdminProblemException BadRequest(string detail) => new(StatusCodes.Status400BadRequest, "Bad request", detail);

    public static AdminProblemException Conflict(string detail) => new(StatusCodes.Status409Conflict, "Conflict", detail);
}

/// <summary>
/// Authenticates <c>/admin/v1/*</c> (except the OpenAPI document) with a bearer token the IdP issued for
/// <see cref="AdminTokenService.Audience"/>, and turns <see cref="AdminProblemException"/> and store conflicts into
/// problem+json.
/// </summary>
internal sealed class AdminApiMiddleware(RequestDelegate next)
{
    public async Task InvokeAsync(HttpContext context, AdminTokenService tokens, AccessService access)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(access);
        if (context.Request.Path.Equals(AdminApi.Prefix + "/openapi.json", StringComparison.OrdinalIgnoreCase))
        {
            await next(context).ConfigureAwait(false);
            return;
        }

        var header = context.Request.Headers.Authorization.ToString();
        var token = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header["Bearer ".Length..].Trim() : null;
        var validation = await tokens.ValidateAsync(token, context.RequestAborted).ConfigureAwait(false);
        if (!validation.IsValid)
        {
            await WriteProblemAsync(context, StatusCodes.Status401Unauthorized, "Unauthorized", token is null
                ? $"Sign in first: send 'Authorization: Bearer TOKEN' with an access token the Gatehouse IdP issued for {AdminTokenService.Scope}."
                : $"The bearer token was refused ({validation.Error}); sign in again to get a new one.",
                token is null
                    ? $"Bearer realm=\"gatehouse-admin\", scope=\"{AdminTokenService.Scope}\""
                    : $"Bearer realm=\"gatehouse-admin\", error=\"invalid_token\", error_description=\"{validation.Error}\"").ConfigureAwait(false);
            return;
        }

        var user = validation.User!;
        var caller = AdminCaller.ForUser(user, await access.ExpandPrincipalAsync(user, context.RequestAborted).ConfigureAwait(false),
            await access.LoadRbacAsync(user.TenantId, context.RequestAborted).ConfigureAwait(false));
        caller.AttachTo(context);
        try
        {
            await next(context).ConfigureAwait(false);
        }
        catch (AdminProblemException e) when (!context.Response.HasStarted)
        {
            await WriteProblemAsync(context, e.Status, e.Title, e.Message).ConfigureAwait(false);
        }
        catch (DirectoryException e) when (!context.Response.HasStarted)
        {
            await WriteProblemAsync(context, StatusCodes.Status400BadRequest, "Bad request", e.Message).ConfigureAwait(false);
        }
        catch (DbUpdateException e) when (!context.Response.HasStarted && !Gatehouse.Storage.StoreStartup.IsUnavailable(e))
        {
            await WriteProblemAsync(context, StatusCodes.Status409Conflict, "Conflict",
                $"The store refused the change ({e.GetBaseException().Message}); it probably conflicts with an existing entry, so list the existing ones first.").ConfigureAwait(false);
        }
        catch (BadHttpRequestException e) when (!context.Response.HasStarted)
        {
            await WriteProblemAsync(context, StatusCodes.Status400BadRequest, "Bad request", $"The request body could not be read ({e.Message}); send JSON as the OpenAPI document at {AdminApi.Prefix}/openapi.json describes.").ConfigureAwait(false);
        }
    }

    public static Task WriteProblemAsync(HttpContext context, int status, string title, string detail, string? wwwAuthenticate = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Response.Clear();
        if (wwwAuthenticate is not null)
        {
            context.Response.Headers.WWWAuthenticate = wwwAuthenticate;
        }

        return Results.Problem(detail: detail, statusCode: status, title: title, instance: context.Request.Path).ExecuteAsync(context);
    }
}

/// <summary>One admin API operation: what the OpenAPI document says about it and the handler that serves it.</summary>
internal sealed record AdminRoute(string Method, string Path, string OperationId, string Summary, string Action, Delegate Handler, int SuccessStatus = StatusCodes.Status200OK, string? RequestSchema = null, string? Note = null);

/// <summary>The admin REST API under <c>/admin/v1/</c> and its OpenAPI 3.1 document (built from the same route table).</summary>
internal static class AdminApi
{
    public const string Prefix = "/admin/v1";

    /// <summary>Registers the middleware and the endpoints (call after <c>UseMiddleware&lt;ContentLengthMiddleware&gt;</c>).</summary>
    public static void MapAdminApi(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseWhen(c => c.Request.Path.StartsWithSegments(Prefix, StringComparison.OrdinalIgnoreCase), branch => branch.UseMiddleware<AdminApiMiddleware>());
        var document = OpenApiDocument().ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        app.MapGet(Prefix + "/openapi.json", () => Results.Text(document, "application/json; charset=utf-8"));
        foreach (var route in AdminHandlers.Routes)
        {
            app.MapMethods(Prefix + route.Path, [route.Method], route.Handler).WithName(route.OperationId);
        }
    }

    /// <summary>The OpenAPI 3.1 document: every route with its summary, the RBAC action it checks, and the error shape.</summary>
    public static JsonObject OpenApiDocument()
    {
        var paths = new JsonObject();
        foreach (var group in AdminHandlers.Routes.GroupBy(r => r.Path))
        {
            var item = new JsonObject();
            foreach (var route in group)
            {
                var parameters = new JsonArray();
                foreach (var segment in route.Path.Split('/').Where(s => s.StartsWith('{')))
                {
                    var name = segment.Trim('{', '}').Split(':')[0];
                    parameters.Add(new JsonObject { ["name"] = name, ["in"] = "path", ["required"] = true, ["schema"] = new JsonObject { ["type"] = "string" } });
                }

                var operation = new JsonObject
                {
                    ["operationId"] = route.OperationId,
                    ["summary"] = route.Summary,
                    ["description"] = $"Requires the RBAC action {route.Action} at the resource's scope.{(route.Note is null ? string.Empty : " " + route.Note)}",
                    ["x-gatehouse-action"] = route.Action,
                    ["parameters"] = parameters,
                    ["responses"] = new JsonObject
                    {
                        [route.SuccessStatus.ToString(System.Globalization.CultureInfo.InvariantCulture)] = new JsonObject { ["description"] = "Success", ["content"] = new JsonObject { ["application/json"] = new JsonObject { ["schema"] = new JsonObject() } } },
                        ["400"] = ProblemResponse("The request is invalid; the detail says what to fix."),
                        ["401"] = ProblemResponse("No valid bearer token for api://gatehouse-admin."),
                        ["403"] = ProblemResponse("The caller's role assignments do not grant the action at this scope (also when the named resource does not exist: see the API's description)."),
                        ["404"] = ProblemResponse("The named resource does not exist (told only to callers who hold the action at the tenant scope, /)."),
                        ["409"] = ProblemResponse("The change conflicts with an existing entry (a name in use, a role still assigned)."),
                    },
                };
                if (route.RequestSchema is { } schema)
                {
                    operation["requestBody"] = new JsonObject
                    {
                        ["required"] = true,
                        ["content"] = new JsonObject { ["application/json"] = new JsonObject { ["schema"] = new JsonObject { ["$ref"] = $"#/components/schemas/{schema}" } } },
                    };
                }

                item[route.Method.ToLowerInvariant()] = operation;
            }

            paths[Prefix + string.Join('/', group.Key.Split('/').Select(s => s.StartsWith('{') ? "{" + s.Trim('{', '}').Split(':')[0] + "}" : s))] = item;
        }

        return new JsonObject
        {
            ["openapi"] = "3.1.0",
            ["info"] = new JsonObject
            {
                ["title"] = "Gatehouse admin API",
                ["version"] = "v1",
                ["description"] = "Users, hosts, host groups, roles, Conditional Access policies, the sign-in log and live sessions. Authenticate with a bearer access token the Gatehouse IdP issues for api://gatehouse-admin/admin; every operation is authorised by RBAC at the resource's scope (/, /hostGroups/{name}, /hosts/{name}). Errors are RFC 7807 problem+json whose detail says what to do. Existence is not disclosed to callers without rights: an operation on a named resource whose scope depends on it (a host, a role assignment, a session) answers 403 with the same detail whether the resource exists or not when the caller may not do the action at the scope named in the request; 404 (the resource does not exist) is given only to callers who hold the action at the tenant scope (/), who could list every resource anyway.",
            },
            ["security"] = new JsonArray(new JsonObject { ["bearer"] = new JsonArray() }),
            ["paths"] = paths,
            ["components"] = new JsonObject
            {
                ["securitySchemes"] = new JsonObject { ["bearer"] = new JsonObject { ["type"] = "http", ["scheme"] = "bearer", ["bearerFormat"] = "JWT" } },
                ["schemas"] = AdminHandlers.Schemas(),
            },
        };
    }

    private static JsonObject ProblemResponse(string description) => new()
    {
        ["description"] = description,
        ["content"] = new JsonObject
        {
            ["application/problem+json"] = new JsonObject
            {
                ["schema"] = new JsonObject
                {
                    ["type"] = "object",
                    ["properties"] = new JsonObject
                    {
                        ["type"] = new JsonObject { ["type"] = "string" },
                        ["title"] = new JsonObject { ["type"] = "string" },
                        ["status"] = new JsonObject { ["type"] = "integer" },
                        ["detail"] = new JsonObject { ["type"] = "string" },
                        ["instance"] = new JsonObject { ["type"] = "string" },
                    },
                },
            },
        },
    };
}
