using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Gatehouse.Storage.Migrations.Sqlite
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
                    Id = table.Column<Guid>(type: "TEXT", nullable: false),
                    AgentId = table.Column<Guid>(type: "TEXT", nullable: false),
                    Kind = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    UserPrincipalName = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Level = table.Column<string>(type: "TEXT", maxLength: 16, nullable: true),
                    LogonId = table.Column<Guid>(type: "TEXT", nullable: true),
                    RequestedBy = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    CreatedAt = table.Column<long>(type: "INTEGER", nullable: false),
                    ExpiresAt = table.Column<long>(type: "INTEGER", nullable: false),
                    ClaimedBy = table.Column<string>(type: "TEXT", maxLength: 256, nullable: true),
                    AnswerProtected = table.Column<string>(type: "TEXT", maxLength: 2048, nullable: true)
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
