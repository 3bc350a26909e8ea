using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Gatehouse.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class AgentWorkRequests : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "AgentWorkRequests",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    AgentId = table.Column<Guid>(type: "uuid", nullable: false),
                    Kind = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    UserPrincipalName = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false),
                    Level = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: true),
                    LogonId = table.Column<Guid>(type: "uuid", nullable: true),
                    RequestedBy = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false),
                    CreatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    ExpiresAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    ClaimedBy = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: true),
                    AnswerProtected = table.Column<string>(type: "character varying(2048)", maxLength: 2048, nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_AgentWorkRequests", x => x.Id);
                    table.ForeignKey(
                        name: "FK_AgentWorkRequests_HostAgents_AgentId",
                        column: x => x.AgentId,
                        principalTable: "HostAgents",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_AgentWorkRequests_AgentId",
                table: "AgentWorkRequests",
                column: "AgentId");

            migrationBuilder.CreateIndex(
                name: "IX_AgentWorkRequests_ExpiresAt",
                table: "AgentWorkRequests",
                column: "ExpiresAt");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "AgentWorkRequests");
        }
    }
}
